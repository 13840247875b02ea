"""Is a recorded bag complete? The recorder's counts per topic (its ``recorder.json``) against
what the publishers say they sent (the sim bridge's and the controller's summaries), so a lossy bag
is never silent: the launch's run summary and closing text carry the ratio (docs/bags.md).

No rclpy: plain dictionaries in, plain dictionaries and text out.
"""

from __future__ import annotations


def published_counts(bridge: dict, controller: dict) -> dict[str, int]:
    """Messages the publishers sent, by topic suffix: ``joint_states`` = the bridge's steps + 1
    (state 0 and one per step: distinct states; state 0 is repeated while the bridge waits for the
    first command, which :func:`completeness` leaves out), ``effort_controller/commands`` = the controller's
    ``counters``: ``ticks`` + ``stale_hold`` (a tick publishes its command, a state that comes too
    late makes it publish a hold). A count a summary lacks is left out."""
    out: dict[str, int] = {}
    if isinstance(bridge.get("ticks"), int):
        out["joint_states"] = bridge["ticks"] + 1
    counters = controller.get("counters") or {}
    if isinstance(counters.get("ticks"), int):
        out["effort_controller/commands"] = counters["ticks"] + int(counters.get("stale_hold") or 0)
    return out


def completeness(recorded: dict[str, int], published: dict[str, int],
                 repeated: dict[str, int] | None = None) -> dict[str, dict]:
    """Per published topic suffix: {"topic", "recorded", "published", "share", "repeats"}:
    recorded = the topic's messages in the bag less ``repeated[topic]`` (the recorder's count of
    messages whose header stamp repeats the previous one's, i.e. distinct states: a repeat must not
    hide a lost state), share = recorded / published (None when nothing was published); a topic
    not recorded at all counts 0."""
    out = {}
    repeated = repeated or {}
    for suffix, sent in published.items():
        topic = next((t for t in recorded if t.rstrip("/").endswith("/" + suffix) or t == suffix), None)
        reps = int(repeated.get(topic, 0)) if topic else 0
        got = int(recorded.get(topic, 0)) - reps if topic else 0
        out[suffix] = {"topic": topic, "recorded": got, "published": int(sent),
                       "share": (got / sent) if sent else None, "repeats": reps}
    return out


def bag_summary(recorder: dict, bridge: dict, controller: dict) -> dict | None:
    """The run summary's ``bag`` entry: path, messages per topic, dropped in the recorder's own
    queue, and the completeness of the states and commands (None when no recorder ran)."""
    if not recorder:
        return None
    return {"path": recorder.get("bag_path"), "messages": recorder.get("messages"),
            "dropped": recorder.get("dropped"),
            "completeness": completeness(recorder.get("messages") or {}, published_counts(bridge, controller),
                                         recorder.get("repeated_stamps"))}


def completeness_line(bag: dict) -> str:
    """One line for the launch's closing text, e.g. ``bag complete: joint_states 10001 of 10001
    (100.0 %)``; ``bag INCOMPLETE`` when a topic's share is below 1 (or the recorder dropped any)."""
    parts, complete = [], not bag.get("dropped")
    for suffix, c in (bag.get("completeness") or {}).items():
        share = c["share"]
        parts.append(f"{suffix} {c['recorded']} of {c['published']}"
                     + (f" ({100.0 * share:.1f} %)" if share is not None else "")
                     + (f" (+{c['repeats']} repeated stamps)" if c.get("repeats") else ""))
        complete = complete and share is not None and share >= 1.0
    drop = f"; dropped in the recorder's queue {bag.get('dropped')}" if bag.get("dropped") else ""
    return f"  bag {'complete' if complete else 'INCOMPLETE'}: " + ", ".join(parts) + drop
