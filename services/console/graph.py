"""The money-flow graph, laid out on the server as layers: the victim on the left, then each layer of
accounts the money reached, one column per depth; edges from the account the money came from, labelled
with the amount. Drawn as SVG by `_case_flow.html`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

WIDTH, HEIGHT = 260, 124  # a node
COLUMN_GAP, ROW_GAP = 90, 18
MARGIN = 12
VICTIM_WIDTH = 120
ACTIVE = ("issued", "delivered", "acknowledged", "executed", "partially_executed", "awaiting_approval")
HOLDING = ("executed", "partially_executed")


@dataclass
class Node:
    id: int
    x: int
    y: int
    institution: str
    account: str
    received: Decimal
    stopped: Decimal
    frozen: Decimal
    returned: Decimal
    gone: Decimal
    state: str  # frozen, stopped, gone, open
    deadline: str | None = None  # ISO time the next deadline of this account's instruction falls
    deadline_kind: str | None = None  # ack, exec, expires
    instruction: str | None = None  # status of the newest instruction on this account


@dataclass
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int
    amount: Decimal


@dataclass
class Layout:
    width: int
    height: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    victim_y: int = 0


def _d(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _deadline(instructions: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """The newest active instruction on the account: its status and its next deadline."""
    active = [i for i in instructions if i["status"] in ACTIVE]
    if not active:
        return None, None, (instructions[-1]["status"] if instructions else None)
    newest = max(active, key=lambda i: i["created_at"])
    if newest["status"] in HOLDING:
        return newest.get("expires_at"), "expires", newest["status"]
    if newest["status"] in ("issued", "delivered"):
        return newest.get("ack_due_at"), "ack", newest["status"]
    if newest["status"] == "acknowledged":
        return newest.get("exec_due_at"), "exec", newest["status"]
    return None, None, newest["status"]


def layout(nodes: list[dict[str, Any]], instructions: list[dict[str, Any]]) -> Layout:
    by_account: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i in sorted(instructions, key=lambda i: i["created_at"]):
        if i["kind"] in ("stop_payment", "freeze", "query"):
            by_account.setdefault((i["institution_id"], i["account"]), []).append(i)
    columns: dict[int, list[dict[str, Any]]] = {}
    order: dict[int, int] = {}
    for n in sorted(nodes, key=lambda n: (n["depth"], n["id"])):
        columns.setdefault(n["depth"], []).append(n)
    # Children sit in the order of their parents, so edges cross as little as a tree allows.
    for depth in sorted(columns):
        columns[depth].sort(key=lambda n: (order.get(n["parent_id"] or -1, 0), n["id"]))
        for row, n in enumerate(columns[depth]):
            order[n["id"]] = row
    rows = max((len(c) for c in columns.values()), default=1)
    height = MARGIN * 2 + rows * HEIGHT + (rows - 1) * ROW_GAP
    depth_count = (max(columns) + 1) if columns else 0
    width = MARGIN * 2 + VICTIM_WIDTH + COLUMN_GAP + depth_count * (WIDTH + COLUMN_GAP)
    out = Layout(width=width, height=height, victim_y=height // 2)
    placed: dict[int, Node] = {}
    for depth in sorted(columns):
        column = columns[depth]
        top = (height - (len(column) * HEIGHT + (len(column) - 1) * ROW_GAP)) // 2
        for row, n in enumerate(column):
            deadline, deadline_kind, status = _deadline(
                by_account.get((n["institution_id"], n["account"]), [])
            )
            stopped, frozen, gone = _d(n["stopped"]), _d(n["frozen"]), _d(n["gone"])
            state = "frozen" if frozen > 0 else "stopped" if stopped > 0 else "gone" if gone > 0 else "open"
            node = Node(
                id=n["id"],
                x=MARGIN + VICTIM_WIDTH + COLUMN_GAP + depth * (WIDTH + COLUMN_GAP),
                y=top + row * (HEIGHT + ROW_GAP),
                institution=n["institution_id"],
                account=n["account"],
                received=_d(n["received"]),
                stopped=stopped,
                frozen=frozen,
                returned=_d(n["returned"]),
                gone=gone,
                state=state,
                deadline=deadline,
                deadline_kind=deadline_kind,
                instruction=status,
            )
            placed[n["id"]] = node
            out.nodes.append(node)
    for node in out.nodes:
        source = next((n for n in nodes if n["id"] == node.id), None)
        parent = placed.get(source["parent_id"]) if source and source["parent_id"] else None
        if parent is not None:
            out.edges.append(
                Edge(parent.x + WIDTH, parent.y + HEIGHT // 2, node.x, node.y + HEIGHT // 2, node.received)
            )
        else:
            out.edges.append(
                Edge(MARGIN + VICTIM_WIDTH, out.victim_y, node.x, node.y + HEIGHT // 2, node.received)
            )
    return out
