"""The whole police story against a running Stopline and its simulated banks, through the public APIs:

    python -m deploy.story [--url http://127.0.0.1:8003] [--gateway http://127.0.0.1:8007]

(by default the ports of the same settings make run reads, STOPLINE_COORDINATION_PORT and
STOPLINE_GATEWAY_PORT)

alert → case → stop-payment → bank executes → query → follow the money → freeze (approved by another
supervisor) → release → return to the victim, with the amounts at each step, and the citizen's side
(the warning on the gateway stand-in, and the answer). Exits non-zero, saying why, when a step does
not reach its state in time.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from deploy.local import fleet
from deploy.local.common import UNIT, gateway_url
from deploy.story.api import Officers, StoryFailed, clock, money, say, wait_until
from services.banksim.settings import BanksimSettings

HELD = frozenset({"executed", "partially_executed"})
DONE = frozenset({"executed"})
VICTIM_ALERTS = ("call_then_transfer", "suspicious_payment")  # the story's choice, in this order
UNANSWERED = frozenset({"issued", "delivered", "acknowledged"})  # sent, no outcome from the institution
# The gateway stand-in's answers (`deploy.local.gateway`), as the story says them.
ANSWERS = {
    "none": "chose not to answer",
    "pending": "had not decided yet",
    "safe": "answered: safe (not being defrauded)",
    "defrauded": "answered: being defrauded",
}


class Story:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2)
        self.api = Officers(args.url, args.unit, self.run)
        self.started = datetime.now(UTC)

    # ── steps ────────────────────────────────────────────────────────────────────────────────
    def alert(self) -> dict[str, Any]:
        """A fresh alert about a victim from the traffic, or (after the wait) the newest one still new,
        whose payee's bank answers instructions (the simulator's other banks hold mule accounts too): a
        call then a transfer if there is one, else a suspicious payment (the simulator makes many more)."""

        def usable(since: datetime | None) -> dict[str, Any] | None:
            for typology in VICTIM_ALERTS:
                params: dict[str, Any] = {"typology": typology, "status": "new", "limit": 50}
                if since is not None:
                    params["since"] = since.isoformat()
                page = self.api.call("operator", "GET", "/v1/alerts", params=params)
                for a in page["items"]:
                    s = a["subject"]
                    if (
                        s.get("payee_account")
                        and s.get("payee_institution") in self.args.banks
                        and a.get("amount_at_risk")
                    ):
                        return dict(a)
            return None

        say(f"waiting up to {self.args.alert_wait:.0f}s for an alert about a victim …")
        found = wait_until(lambda: usable(self.started), timeout_s=self.args.alert_wait) or usable(None)
        if found is None:
            raise StoryFailed(
                "no new alert about a victim with an amount and a payee at a bank that answers "
                f"({', '.join(self.args.banks)}): is the simulator running?"
            )
        s = found["subject"]
        at_risk = money(found["amount_at_risk"])
        say(f"1. ALERT {found['id']}  {found['typology']}  score {found['score']:.2f}  {at_risk} CNY")
        say(f"   {found['reasons'][0]}")
        say(
            f"   victim {s.get('phone')} ({s.get('institution')})"
            f"  →  payee {s['payee_institution']}/{s['payee_account']}"
        )
        return found

    def open_case(self, alert: dict[str, Any]) -> dict[str, Any]:
        s, amount = alert["subject"], alert["amount_at_risk"]
        self.api.call("operator", "POST", f"/v1/alerts/{alert['id']}/status", json={"status": "triaged"})
        body = {
            "case_number": f"STORY-{self.run}",
            "title": f"Story: {alert['typology']} to a likely mule",
            "source": "alert",
            "alert_ids": [alert["id"]],
            "victim": {
                "phone": s.get("phone"),
                "institution_id": s.get("institution"),
                "account": s.get("account"),
            },
            "amount_lost": amount,
            "lost_at": alert["event_time"],
            "destinations": [
                {
                    "institution_id": s["payee_institution"],
                    "account": s["payee_account"],
                    "amount": amount,
                    "at": alert["event_time"],
                }
            ],
        }
        case = dict(self.api.call("operator", "POST", "/v1/cases", json=body, expect=201))
        self.api.call("operator", "POST", f"/v1/alerts/{alert['id']}/status", json={"status": "escalated"})
        say(f"2. CASE {case['case_number']} opened ({case['id']}), lost {money(case['amount_lost'])}")
        return case

    def issue(
        self, who: str, case: dict[str, Any], body: dict[str, Any], *, wanted: frozenset[str], what: str
    ) -> dict[str, Any]:
        """Issue and wait for the answer; a rejection is issued again (as police would), and so is an
        instruction left unanswered, once withdrawn (the simulated banks leave some unanswered on purpose,
        to show the overdue path)."""
        for attempt in range(1, self.args.retries + 2):
            row = self.api.call(who, "POST", f"/v1/cases/{case['id']}/instructions", json=body, expect=201)
            row = self.api.wait_for(
                row["id"], wanted, timeout_s=self.args.step_timeout, what=what, unanswered_ok=True
            )
            if row["status"] in wanted:
                return row
            if row["status"] in UNANSWERED:
                note = f"no answer in {self.args.step_timeout:.0f} s; issued again"
                self.api.call(who, "POST", f"/v1/instructions/{row['id']}/cancel", json={"note": note})
                say(f"   {what} left unanswered by {row['institution_id']}: withdrawn; attempt {attempt}")
                continue
            reason = row.get("outcome_reason") or ""
            say(f"   {what} {row['status']} by {row['institution_id']} ({reason}); attempt {attempt}")
            if row["status"] != "rejected":
                break
        raise StoryFailed(f"{what} ended {row['status']}: {row.get('outcome_reason')}")

    def stop_payment(self, case: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any]:
        s = alert["subject"]
        body = {
            "kind": "stop_payment",
            "institution_id": s["payee_institution"],
            "account": s["payee_account"],
            "amount": alert["amount_at_risk"],
            "reason": "victim's transfer after a suspicious call",
        }
        t0 = time.monotonic()
        row = self.issue("operator", case, body, wanted=HELD, what="stop-payment")
        say(
            f"3. STOP-PAYMENT {row['id']} → {row['institution_id']}: {row['status']}"
            f" in {time.monotonic() - t0:.1f}s, "
            f"held {money(row['held_amount'])} of {money(row['amount'])}"
            + (f" ({row['outcome_reason']})" if row.get("outcome_reason") else "")
        )
        return row

    def query(self, case: dict[str, Any], stop: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any]:
        since = datetime.fromisoformat(alert["event_time"]) - timedelta(minutes=self.args.lookback_min)
        body = {
            "kind": "query",
            "institution_id": stop["institution_id"],
            "account": stop["account"],
            "since": since.isoformat(),
        }
        row = self.issue("operator", case, body, wanted=DONE, what="query")
        answers = self.api.call("operator", "GET", f"/v1/instructions/{row['id']}/responses")
        result = next((a["query_result"] for a in answers if a.get("query_result")), None) or {}
        transfers = result.get("transfers", [])
        say(
            f"4. QUERY {row['id']}: holder {result.get('holder', {}).get('name')}, balance "
            f"{money(result.get('balance'))}, {len(transfers)} transfer(s) out since {clock(since)}"
        )
        for t in transfers:
            say(f"   → {t['to_institution']}/{t['to_account']}  {money(t['amount'])}  at {clock(t['at'])}")
        return row

    def follow(self, case: dict[str, Any]) -> None:
        proposals = self.api.call(
            "operator", "GET", f"/v1/cases/{case['id']}/proposals", params={"status": "open"}
        )
        nexthop = [p for p in proposals if p["depth"] >= 1]
        if not nexthop:
            say("5. FOLLOW THE MONEY: nothing above the threshold left the account; no next hop to stop")
            return
        ids = [p["id"] for p in nexthop]
        issued = self.api.call(
            "operator",
            "POST",
            f"/v1/cases/{case['id']}/proposals/accept",
            json={"proposal_ids": ids, "follow_with_query": True},
        )
        say(f"5. FOLLOW THE MONEY: accepted {len(ids)} proposal(s): {len(issued)} instruction(s) issued")
        for row in issued:
            row = self.api.wait_for(
                row["id"], frozenset(), timeout_s=self.args.step_timeout, what=row["kind"]
            )
            held = f", held {money(row['held_amount'])}" if row["kind"] == "stop_payment" else ""
            say(f"   {row['kind']:<12} {row['institution_id']}/{row['account']}: {row['status']}{held}")

    def freeze(self, case: dict[str, Any], stop: dict[str, Any]) -> dict[str, Any]:
        body = {
            "kind": "freeze",
            "institution_id": stop["institution_id"],
            "account": stop["account"],
            "amount": stop["held_amount"],  # no more than what is held: nobody is over-frozen
            "document_number": f"CJ-FRZ-{self.run}",
            "reason": "convert the stop-payment into a freeze",
        }
        row = self.api.call(
            "supervisor", "POST", f"/v1/cases/{case['id']}/instructions", json=body, expect=201
        )
        say(
            f"6. FREEZE {row['id']} requested by a supervisor: {row['status']},"
            f" document {body['document_number']}"
        )
        self.api.call("supervisor", "POST", f"/v1/instructions/{row['id']}/approve", expect=403)
        say("   the requester's own approval is refused (403)")
        return self.approved(row, what="freeze", wanted=HELD)

    def approved(self, row: dict[str, Any], *, what: str, wanted: frozenset[str]) -> dict[str, Any]:
        row = self.api.call("approver", "POST", f"/v1/instructions/{row['id']}/approve")
        say(f"   approved by {row['approved_by']}: {row['status']}")
        row = self.api.wait_for(row["id"], wanted, timeout_s=self.args.step_timeout, what=what)
        if row["status"] not in wanted:
            raise StoryFailed(f"{what} {row['id']} ended {row['status']}: {row.get('outcome_reason')}")
        # A release answers with the amount it let go, a hold with the amount it holds.
        done = (
            f"released {money(row['amount'])}" if what == "release" else f"held {money(row['held_amount'])}"
        )
        say(f"   {what} {row['status']} by {row['institution_id']}, {done}")
        return row

    def release(self, case: dict[str, Any], freeze: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": "release", "parent_id": freeze["id"], "document_number": f"CJ-REL-{self.run}"}
        row: dict[str, Any] = self.api.call(
            "supervisor", "POST", f"/v1/cases/{case['id']}/instructions", json=body, expect=201
        )
        say(f"7. RELEASE {row['id']} of {money(row['amount'])} requested: {row['status']}")
        self.approved(row, what="release", wanted=DONE)
        parent = self.api.instruction(freeze["id"])
        if parent["status"] != "released":
            raise StoryFailed(f"the freeze is {parent['status']} after its release was executed")
        return row

    def give_back(self, case: dict[str, Any], freeze: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": "return_funds", "parent_id": freeze["id"]}
        row = self.issue("operator", case, body, wanted=DONE, what="return of funds")
        say(
            f"8. RETURN {row['id']}: {money(row['amount'])} from {row['institution_id']} to "
            f"{row['beneficiary_institution']}/{row['beneficiary_account']}: {row['status']}"
        )
        return row

    def flow(self, case: dict[str, Any], label: str) -> dict[str, Any]:
        view = dict(self.api.call("operator", "GET", f"/v1/cases/{case['id']}/flow"))
        t = view["totals"]
        say(
            f"   [{label}] lost {money(t['lost'])} | stopped {money(t['stopped'])}"
            f" frozen {money(t['frozen'])} returned {money(t['returned'])}"
            f" | recovered {money(t['recovered'])} outstanding {money(t['outstanding'])}"
        )
        for n in view["nodes"]:
            say(
                f"     {'  ' * n['depth']}{n['institution_id']}/{n['account']}:"
                f" received {money(n['received'])} "
                f"stopped {money(n['stopped'])} frozen {money(n['frozen'])} returned {money(n['returned'])} "
                f"gone {money(n['gone'])}"
            )
        return view

    def citizen(self, alert: dict[str, Any]) -> None:
        phone = alert["subject"].get("phone")
        if not phone or "warn_citizen" not in alert["recommended_actions"]:
            say("9. CITIZEN: the alert did not recommend a warning")
            return
        url = f"{self.args.gateway.rstrip('/')}/messages"

        def fetch() -> list[dict[str, Any]]:
            try:
                return list(httpx.get(url, params={"to": phone}, timeout=5).json().get("items", []))
            except (httpx.HTTPError, ValueError) as exc:
                raise StoryFailed(f"the gateway stand-in at {url} did not answer: {exc}") from exc

        # Wait until the person has decided (answered or not); then show what the gateway holds.
        wait_until(
            lambda: (items := fetch()) and all(i["answer"] != "pending" for i in items),
            timeout_s=self.args.citizen_wait,
        )
        items = fetch()
        if not items:
            # Not a failure of the police story: the notifier sends one warning per person per
            # rate-limit period, and the gateway stand-in forgets what it took before a restart.
            say(f"9. CITIZEN {phone}: no warning on the gateway stand-in for this person (rate limit?)")
            return
        for m in items:
            say(f"9. CITIZEN {phone}: {m['channel']} warning in {m['language']} at {clock(m['at'])}")
            say(f"   “{m['text'][:90]}…”")
            status = m.get("answer_status")
            refused = f" (refused: HTTP {status})" if status is not None and not 200 <= status < 300 else ""
            say(f"   the simulated citizen {ANSWERS.get(m['answer'], 'answered: ' + m['answer'])}{refused}")
        if any(m["answer"] == "defrauded" for m in items):
            self.citizen_case(phone)

    def citizen_case(self, phone: str) -> None:
        """The answer "defrauded" opened a case with a drafted stop-payment, or noted on ours."""

        def found() -> list[str]:
            lines = []
            for c in self.api.call("operator", "GET", "/v1/cases", params={"limit": 200}):
                if c["victim_phone"] != phone:
                    continue
                detail = self.api.call("operator", "GET", f"/v1/cases/{c['id']}")
                drafted = [
                    p
                    for p in self.api.call("operator", "GET", f"/v1/cases/{c['id']}/proposals")
                    if p["depth"] == 0
                ]
                noted = any("being defrauded" in n["text"] for n in detail["notes"])
                for p in drafted:
                    lines.append(
                        f"   → case {c['case_number']}: drafted stop-payment {money(p['amount'])} on "
                        f"{p['institution_id']}/{p['account']} ({p['status']})"
                    )
                if noted and not drafted:
                    lines.append(f"   → case {c['case_number']}: noted (its stop-payment was issued already)")
            return lines

        lines = wait_until(found, timeout_s=10)
        if not lines:
            raise StoryFailed(f"{phone} answered 'defrauded' but no case of the unit shows it")
        for line in lines:
            say(line)

    # ── the whole story ───────────────────────────────────────────────────────────────────────
    def tell(self) -> None:
        alert = self.alert()
        case = self.open_case(alert)
        stop = self.stop_payment(case, alert)
        self.flow(case, "after the stop-payment")
        self.query(case, stop, alert)
        self.follow(case)
        self.flow(case, "after following the money")
        freeze = self.freeze(case, stop)
        if self.api.instruction(stop["id"])["status"] != "converted":
            raise StoryFailed("the stop-payment was not converted into the freeze")
        say("   the stop-payment is converted into the freeze")
        self.flow(case, "after the freeze")
        self.release(case, freeze)
        ret = self.give_back(case, freeze)
        view = self.flow(case, "after the return")
        t = view["totals"]
        if Decimal(str(t["returned"])) != Decimal(str(ret["amount"])):
            raise StoryFailed(f"returned {t['returned']} in the flow, {ret['amount']} executed")
        lost, back = Decimal(str(t["lost"])), Decimal(str(t["recovered"]))
        say(f"   RECOVERED {money(back)} of {money(lost)} lost; LOST {money(lost - back)}")
        self.citizen(alert)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="the whole police story against a running Stopline")
    p.add_argument("--url", default=fleet.url_of(fleet.fixed_ports, "coordination"), help="coordination API")
    p.add_argument("--gateway", default=gateway_url(), help="the SMS/push gateway stand-in")
    p.add_argument(
        "--banks",
        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
        default=BanksimSettings().institutions,
        help="comma-separated: the banks that answer instructions (default: the simulated banks')",
    )
    p.add_argument("--unit", default=UNIT, help="police unit of the story's officers")
    p.add_argument(
        "--alert-wait",
        type=float,
        default=300.0,
        # make run's traffic may take minutes to bring a call then a transfer to a bank that answers: a
        # newcomer's story gave up twice after 90 s with the only such alerts at a bank that does not.
        help="seconds to wait for a fresh alert about a victim at a bank that answers",
    )
    p.add_argument("--step-timeout", type=float, default=45.0, help="seconds a bank has to answer each step")
    p.add_argument("--citizen-wait", type=float, default=30.0, help="seconds to wait for the warning")
    p.add_argument("--lookback-min", type=float, default=60.0, help="query: transfers out since loss − this")
    p.add_argument("--retries", type=int, default=2, help="re-issues of an instruction the bank rejects")
    return p


def main() -> None:
    args = parser().parse_args()
    story = Story(args)
    t0 = time.monotonic()
    try:
        story.tell()
    except StoryFailed as exc:
        say(f"STORY FAILED after {time.monotonic() - t0:.0f}s: {exc}")
        sys.exit(1)
    finally:
        story.api.close()
    say(f"STORY PASSED in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
