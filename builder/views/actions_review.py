"""Builder page: actions_review (placeholder until the builder issue lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("actions_review")
    st.info("This page is being built.")
