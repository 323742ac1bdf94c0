"""How checkpoints are read back: only a fixed allow-list of types is ever rebuilt from the database."""

from __future__ import annotations

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer


def strict_serializer() -> JsonPlusSerializer:
    """LangGraph's serializer in strict mode (as LANGGRAPH_STRICT_MSGPACK=true): a tampered checkpoint cannot make
    the worker import and call arbitrary code; our state holds only plain data and LangGraph's own types."""
    return JsonPlusSerializer(allowed_msgpack_modules=None)
