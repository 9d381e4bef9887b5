from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from ..htmx import page_or_fragment
from ..auth import access, admin, viewer
from ..domain.accounts import Role
from . import bp, services
from .forms import EnvironmentForm


@bp.get("/")
@viewer
def index():
    rows, states = services.all_with_status()
    return page_or_fragment("environments/index.html", "environments/_grid.html", rows=rows, states=states)


@bp.route("/<int:environment_id>", methods=["GET", "POST"])
@access(Role.VIEWER, write=Role.ADMIN)
def detail(environment_id: int):
    env = services.get(environment_id)
    form = EnvironmentForm(obj=env)
    if form.submit(lambda data: services.update(environment_id, data)):
        flash(f"Environment {environment_id} saved.", "success")
        return redirect(url_for(".detail", environment_id=environment_id), 303)
    return render_template("environments/detail.html", form=form, **services.activity(env)), form.status


@bp.post("/<int:environment_id>/unlock")
@admin
def unlock(environment_id: int):
    services.unlock(environment_id)
    flash(f"Environment {environment_id} unlocked; the next waiting run starts now.", "success")
    return redirect(url_for(".detail", environment_id=environment_id), 303)
