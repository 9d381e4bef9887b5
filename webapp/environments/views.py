from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..auth import access, admin, operator, principal, viewer
from ..domain.accounts import Role
from ..htmx import page_or_fragment, seen
from . import bp, holds, pages, services
from .forms import EnvironmentForm, HoldForm, ReleaseForm, SecretDeleteForm, SecretForm


@bp.get("/")
@viewer
def index():
    return page_or_fragment("environments/index.html", "environments/_grid.html", **pages.grid(seen(request.args)))


@bp.route("/<int:environment_id>", methods=["GET", "POST"])
@access(Role.VIEWER, write=Role.ADMIN)
def detail(environment_id: int):
    env = services.get(environment_id)
    form = EnvironmentForm(obj=env)
    if form.submit(lambda data: services.update(environment_id, data)):
        flash(f"Environment {environment_id} saved.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return page_or_fragment("environments/detail.html", "environments/_activity.html", form.status,
                            **pages.detail(env, form=form))


@bp.post("/<int:environment_id>/unlock")
@admin
def unlock(environment_id: int):
    services.unlock(environment_id)
    flash(f"Environment {environment_id} unlocked; the next waiting run starts now.", "success")
    return redirect(url_for(".detail", environment_id=environment_id), 303)


@bp.post("/<int:environment_id>/hold")
@operator
def hold(environment_id: int):
    form = HoldForm()
    if form.submit(lambda data: holds.hold(environment_id, data, principal().username, principal())):
        flash(f"Environment {environment_id} held: no new run starts there until released.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return render_template("environments/detail.html", **pages.detail(services.get(environment_id), hold_form=form)), 422


@bp.post("/<int:environment_id>/release")
@operator
def release(environment_id: int):
    form = ReleaseForm()
    if form.submit(lambda data: holds.release(environment_id, principal())):
        flash(f"Environment {environment_id} released; the next waiting run starts now.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return render_template("environments/detail.html", **pages.detail(services.get(environment_id),
                                                                       release_form=form)), form.refused_status or 409


@bp.post("/<int:environment_id>/secrets")
@admin
def set_secret(environment_id: int):
    form = SecretForm()
    if form.submit(lambda data: services.update(environment_id, data)):
        flash(f"Secret {form.name.data.strip()} saved; its value is never shown again.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return render_template("environments/detail.html", **pages.detail(services.get(environment_id), secret_form=form)), 422


@bp.post("/<int:environment_id>/secrets/delete")
@admin
def delete_secret(environment_id: int):
    form = SecretDeleteForm()
    if form.submit(lambda data: services.update(environment_id, data)):
        flash(f"Secret {form.name.data} deleted.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return render_template("environments/detail.html", **pages.detail(services.get(environment_id))), 422
