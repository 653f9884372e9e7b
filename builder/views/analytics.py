"""Builder page: analytics (placeholder until the builder issue lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("analytics")
    st.info("This page is being built.")
