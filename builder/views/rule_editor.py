"""Builder page: rule_editor (placeholder until the builder issue lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("rule_editor")
    st.info("This page is being built.")
