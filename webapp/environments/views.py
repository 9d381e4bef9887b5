from __future__ import annotations

from flask import flash, redirect, request, url_for

from ..auth import access, admin, viewer
from ..domain.accounts import Role
from ..htmx import page_or_fragment, seen
from . import bp, pages, services
from .forms import EnvironmentForm


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
    return page_or_fragment("environments/detail.html", "environments/_activity.html", form.status, form=form,
                            **pages.activity(env))


@bp.post("/<int:environment_id>/unlock")
@admin
def unlock(environment_id: int):
    services.unlock(environment_id)
    flash(f"Environment {environment_id} unlocked; the next waiting run starts now.", "success")
    return redirect(url_for(".detail", environment_id=environment_id), 303)
