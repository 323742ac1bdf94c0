"""LangGraph graphs: the outreach thread state machine."""
