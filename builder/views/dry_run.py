"""Builder page: dry_run (placeholder until the builder issue lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("dry_run")
    st.info("This page is being built.")
