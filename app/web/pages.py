"""The pages: the drawing board, and the operator's review of corrections."""

from flask import Blueprint, current_app, render_template
from werkzeug.exceptions import NotFound

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/admin/corrections")
def review():
    # The page holds no data: it asks for the operator's token and reads the API with it.
    if not current_app.config["ADMIN_TOKEN"]:
        raise NotFound()
    return render_template("review.html")
