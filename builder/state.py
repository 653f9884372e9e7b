"""Shared resources of the builder app: one ``Conveyor`` per process (``st.cache_resource``).

Pages never write rows themselves: every change goes through the ``Conveyor`` API, so rules fire the
same way as from the CLI. The database URL comes from ``CONVEYOR_DB`` (set by ``conveyor builder``).
"""

from __future__ import annotations

import os

import streamlit as st

from engine.conveyor import Conveyor
from storage.db import database_url


@st.cache_resource(show_spinner=False)
def _conveyor(url: str) -> Conveyor:
    return Conveyor(url)


def get_conveyor() -> Conveyor:
    return _conveyor(database_url(os.environ.get("CONVEYOR_DB")))
