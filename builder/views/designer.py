"""Builder page: designer (placeholder until the builder issue lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("designer")
    st.info("This page is being built.")
