"""appservice."""
