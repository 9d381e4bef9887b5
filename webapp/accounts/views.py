from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..auth import admin, client_ip, principal, public, viewer
from . import bp, pages, tokens
from . import services as accounts
from .forms import EditUserForm, LoginForm, NewUserForm, PasswordForm, TokenForm


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    if signed_in := form.submit(lambda data: accounts.authenticate_password(**data, ip=client_ip(), via="web")):
        pages.start_session(signed_in)
        return redirect(pages.safe_next(request.args.get("next")), 303)
    return render_template("accounts/login.html", form=form), form.status, form.refused_headers


@bp.post("/logout")
@viewer
def logout():
    pages.end_session(principal())
    flash("You are signed out.", "success")
    return redirect(url_for(".login"), 303)


@bp.route("/account", methods=["GET", "POST"])
@viewer
def account():
    password_form, token_form = PasswordForm(prefix="pw"), TokenForm(prefix="tok")
    if password_form.submit(lambda data: accounts.change_own_password(principal(), **data)):
        return pages.password_changed(principal())
    new = token_form.submit(lambda data: tokens.create_token(principal().user_id, data, principal()))
    context = pages.account(principal(), password_form, token_form, new)
    return render_template("accounts/account.html", **context), context["status"]


@bp.post("/account/tokens/<int:token_id>/revoke")
@viewer
def revoke_token(token_id: int):
    owner = tokens.revoke_token(token_id, principal())
    flash("Token revoked: it stops working now.", "success")
    mine = owner == principal().username
    return redirect(url_for(".account") if mine else url_for(".edit_user", username=owner), 303)


@bp.route("/admin/users", methods=["GET", "POST"])
@admin
def users():
    form = NewUserForm()
    if row := form.submit(accounts.create_user):
        flash(f"Account {row.username} created ({row.role}).", "success")
        return redirect(url_for(".users"), 303)
    return render_template("accounts/users.html", form=form, **pages.users()), form.status


@bp.route("/admin/users/<username>", methods=["GET", "POST"])
@admin
def edit_user(username: str):
    row = accounts.get(username)
    form = EditUserForm(obj=row)
    if form.submit(lambda data: accounts.update_user(username, data, principal())):
        flash(f"Account {row.username} saved.", "success")
        return redirect(url_for(".users"), 303)
    return render_template("accounts/user.html", form=form, row=row, tokens=pages.tokens_of(row)), form.status
