"""Scheduling rules: what an appointment does to the slots it is booked in."""
