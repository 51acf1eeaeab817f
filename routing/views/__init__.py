"""Routing pages: queues, phone numbers, and flows with their builder."""
