#!/usr/bin/env python3
"""A complete client for labeld's job API (docs/protocol.md), in Python with pyzmq.

It walks through the API against a running labeld and checks every answer:

  1. connect a DEALER to the request endpoint and a SUB to the event endpoint,
     subscribe first (the "slow joiner" rule), then ask `health` and `printers`;
  2. `submit` a label job with a client job id and an IMb whose serial labeld
     allocates;
  3. submit it again: the same answer comes back with "replayed": true, and nothing
     prints twice; a *different* request under the same id is a `conflict`;
  4. wait until the job is printed, by events *and* by polling `status`;
  5. `reprint` it with new serials, and wait for that job too;
  6. `pause` the printer, submit a second job, `cancel` it, `resume` the printer;
  7. `health` once more.

    pip install pyzmq
    python3 examples/client.py --requests tcp://127.0.0.1:7310 \\
        --events tcp://127.0.0.1:7311 --printer preview

Exit status: 0 when every step went as expected, 1 when labeld answered something
unexpected, 2 for bad arguments, 3 on a timeout (no reply, or a job not final in time).
"""

import argparse
import collections
import json
import sys
import time
import uuid

try:
    import zmq
except ImportError:
    sys.exit("this example needs pyzmq: pip install pyzmq")

PROTOCOL_VERSION = 1


class StepFailed(Exception):
    """labeld answered, but not what this step expects (exit status 1)."""


class Unreachable(Exception):
    """No reply or event within the timeout (exit status 3)."""


class Labeld:
    """One DEALER for requests and one SUB for events, on one zmq.Poller.

    Events that arrive while we wait for a reply are kept in a queue, so nothing is
    lost between the two sockets.
    """

    def __init__(self, context, requests, events, timeout):
        self.timeout = timeout
        # DEALER, not REQ: a DEALER never gets stuck waiting for a lost reply, and
        # could have several requests in flight (replies are matched by "id").
        self.dealer = context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(requests)
        self.sub = context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(events)
        self.poller = zmq.Poller()
        self.poller.register(self.dealer, zmq.POLLIN)
        self.poller.register(self.sub, zmq.POLLIN)
        self.pending_events = collections.deque()
        self.next_id = 1

    def subscribe(self, prefix):
        """Subscribes to a topic prefix (b"job." gets every job's events)."""
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def request(self, op, **fields):
        """Sends one request and returns its reply (a dict, "ok" true or false)."""
        request_id = self.next_id
        self.next_id += 1
        request = {"v": PROTOCOL_VERSION, "id": request_id, "op": op, **fields}
        # One frame holding one JSON object. (A REQ socket would add an empty
        # delimiter frame before it; labeld accepts both.)
        self.dealer.send(json.dumps(request).encode())
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unreachable(f"no reply to {op} within {self.timeout} s (is labeld running?)")
            for socket, _ in self.poller.poll(left * 1000):
                if socket is self.sub:
                    self._read_event()
                    continue
                frames = self.dealer.recv_multipart()
                # The JSON is the last frame (an empty delimiter may precede it).
                reply = json.loads(frames[-1])
                if reply.get("id") == request_id:
                    return reply
                # A reply to an earlier request we stopped waiting for: skip it.

    def call(self, op, **fields):
        """A request that must succeed: returns the reply or raises StepFailed."""
        reply = self.request(op, **fields)
        if reply.get("v") != PROTOCOL_VERSION or reply.get("ok") is not True:
            raise StepFailed(f"{op} failed: {describe_error(reply)}")
        return reply

    def next_event(self, timeout):
        """The next (topic, event) pair, or None after `timeout` seconds."""
        if not self.pending_events:
            if self.sub.poll(max(timeout, 0) * 1000):
                self._read_event()
        return self.pending_events.popleft() if self.pending_events else None

    def _read_event(self):
        # Every event is two frames: the topic and the JSON payload.
        frames = self.sub.recv_multipart()
        if len(frames) == 2:
            self.pending_events.append((frames[0].decode(), json.loads(frames[1])))

    def close(self):
        self.dealer.close()
        self.sub.close()


def describe_error(reply):
    """One line for an error reply: code, field and message."""
    error = reply.get("error") or {}
    field = f" ({error['field']})" if error.get("field") else ""
    return f"{error.get('code', 'no error code')}{field}: {error.get('message', json.dumps(reply))}"


def address_job(mailer_id, service_type, to):
    """A 4x6 address label whose IMb serial labeld allocates (docs/labels.md)."""
    return {
        "template": "address",
        "size": "4x6",
        # No "tracking": labeld takes the next serial from this Mailer ID's range and
        # returns it in the reply. ("barcode_id" is left at its default, "00".)
        "imb": {"mailer_id": mailer_id, "service_type": service_type, "routing": "987654321"},
        "to": to,
        "from": ["ACME MAILROOM", "1 INDUSTRIAL WAY", "AUSTIN TX 78701"],
    }


def serial_text(reply):
    return ", ".join(f"{s['mailer_id']}/{s['serial']} ({s['tracking']})" for s in reply["serials"])


def wait_until_final(labeld, job_id, timeout, poll_every=0.5):
    """Waits until every label of `job_id` is final; returns the last status reply.

    Events tell us quickly; `status` polling makes sure a missed event (slow joiner,
    dropped event, reconnect) cannot leave us waiting forever.
    """
    topic = f"job.{job_id}"

    def show(event):
        event_topic, payload = event
        # A subscription is a prefix match ("job.a" also gets "job.ab"): compare exactly.
        if event_topic == topic:
            fields = {k: v for k, v in payload.items() if k not in ("v", "event", "job_id")}
            print(f"  event {event_topic}: {payload.get('event')} {json.dumps(fields)}")

    deadline = time.monotonic() + timeout
    next_poll = time.monotonic()
    while True:
        # Show whatever events have arrived, then ask the spool when a poll is due.
        event = labeld.next_event(0)
        while event is not None:
            show(event)
            event = labeld.next_event(0)
        now = time.monotonic()
        if now >= next_poll:
            status = labeld.call("status", job_id=job_id)
            # progress.done: every label is final (printed, failed or cancelled).
            # Not "state": a cancelled job may still have a label being printed.
            if status["progress"]["done"]:
                return status
            next_poll = now + poll_every
        if now >= deadline:
            raise Unreachable(f"{job_id} is still {status['state']} after {timeout} s: {status['progress']}")
        event = labeld.next_event(min(next_poll, deadline) - now)
        if event is not None:
            show(event)
            if event[0] == topic and event[1].get("event") == "done":
                # Every label is final: confirm with status (the spool is the record).
                next_poll = time.monotonic()


def expect_printed(status, label_count):
    progress = status["progress"]
    if status["state"] != "done" or progress["printed"] != label_count:
        raise StepFailed(f"{status['job_id']} ended {status['state']} with {progress}; expected {label_count} printed")
    failed = [label for label in status["labels"] if label["state"] != "printed"]
    if failed:
        raise StepFailed(f"{status['job_id']}: labels not printed: {failed}")


def run(labeld, args):
    # 1. Subscribe before submitting anything. Subscriptions travel asynchronously;
    #    a round trip on the request socket and a short pause give ours time to reach
    #    labeld, and status polling covers whatever is still missed.
    labeld.subscribe("job.")
    labeld.subscribe(f"printer.{args.printer}")
    health = labeld.call("health")
    time.sleep(0.2)
    print(f"health: {health['status']} (labeld {health['version']}, {health['printers']} printers, "
          f"{health['open_labels']} labels open)")

    printers = labeld.call("printers")["printers"]
    print("printers: " + ", ".join(f"{p['name']}={p['state']}" for p in printers))
    if not any(p["name"] == args.printer for p in printers):
        raise StepFailed(f"printer {args.printer!r} is not configured on this labeld")

    # 2. Submit with our own job id: resending it is then always safe.
    job_id = f"{args.job_prefix}-1"
    submit = {
        "printer": args.printer,
        "job_id": job_id,
        "job": address_job(args.mailer_id, args.service_type,
                           ["JOHN Q PUBLIC", "123 MAIN ST", "ANYTOWN ST 98765-4321"]),
    }
    first = labeld.call("submit", **submit)
    if first["replayed"] or first["label_count"] != 1 or len(first["serials"]) != 1:
        raise StepFailed(f"unexpected submit reply: {first}")
    for warning in first["warnings"]:
        print(f"  warning: {warning}")
    print(f"submitted {first['job_id']}: {first['label_count']} label, serial {serial_text(first)}")

    # 3. The same request again (as after a lost reply): the original answer, marked
    #    replayed; no second job, no second serial.
    again = labeld.call("submit", **submit)
    same = {k: again[k] for k in ("job_id", "label_count", "serials")} == \
        {k: first[k] for k in ("job_id", "label_count", "serials")}
    if not again["replayed"] or not same:
        raise StepFailed(f"resubmit was not replayed with the same answer: {again}")
    print(f"resubmitted {job_id}: replayed, same serial {serial_text(again)}")

    # A different request under the same job id is refused.
    changed = dict(submit, priority=9)
    conflict = labeld.request("submit", **changed)
    if conflict.get("ok") or conflict["error"]["code"] != "conflict":
        raise StepFailed(f"a changed request under {job_id} was not a conflict: {conflict}")
    print(f"changed request under {job_id}: {conflict['error']['code']} (field {conflict['error']['field']})")

    # 4. Wait until it is printed.
    status = wait_until_final(labeld, job_id, args.timeout)
    expect_printed(status, 1)
    print(f"{job_id}: printed ({status['progress']['printed']} of {status['progress']['total']})")

    # 5. Reprint with new serials: a new job, new pieces.
    reprint = labeld.call("reprint", job_id=job_id, serials="new")
    if reprint["job_id"] == job_id or reprint["serials"] == first["serials"]:
        raise StepFailed(f"reprint with new serials reused the job or its serials: {reprint}")
    print(f"reprinted {job_id} as {reprint['job_id']}: new serial {serial_text(reprint)}")
    status = wait_until_final(labeld, reprint["job_id"], args.timeout)
    expect_printed(status, reprint["label_count"])
    print(f"{reprint['job_id']}: printed ({status['progress']['printed']} of {status['progress']['total']})")

    # 6. Cancel: pause the printer so the job stays queued, cancel it, resume.
    paused = labeld.call("pause", printer=args.printer)
    if paused["paused"] is not True:
        raise StepFailed(f"pause did not pause: {paused}")
    print(f"paused {args.printer}")
    held_id = f"{args.job_prefix}-2"
    held = labeld.call("submit", printer=args.printer, job_id=held_id,
                       job=address_job(args.mailer_id, args.service_type,
                                       ["JANE ROE", "PO BOX 12", "ANYTOWN ST 98765"]))
    print(f"submitted {held_id}: {held['label_count']} label, serial {serial_text(held)}")
    cancel = labeld.call("cancel", job_id=held_id)
    if cancel["cancelled"] != 1:
        raise StepFailed(f"cancel of the held job dropped {cancel['cancelled']} labels, expected 1")
    status = wait_until_final(labeld, held_id, args.timeout)
    if status["state"] != "cancelled" or status["progress"]["cancelled"] != 1:
        raise StepFailed(f"{held_id} is {status['state']} with {status['progress']} after cancel")
    print(f"cancelled {held_id}: {cancel['cancelled']} label (its serial stays used)")
    resumed = labeld.call("resume", printer=args.printer)
    if resumed["paused"] is not False:
        raise StepFailed(f"resume did not resume: {resumed}")
    print(f"resumed {args.printer}")

    # Asking about a job that does not exist is a typed error, not a hang.
    missing = labeld.request("status", job_id=f"{args.job_prefix}-missing")
    if missing.get("ok") or missing["error"]["code"] != "not_found":
        raise StepFailed(f"status of an unknown job: {missing}")
    print(f"status of an unknown job: {missing['error']['code']}")

    # 7. Still healthy.
    health = labeld.call("health")
    print(f"health: {health['status']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", default="tcp://127.0.0.1:7310",
                        help="labeld's request endpoint (default: %(default)s)")
    parser.add_argument("--events", default="tcp://127.0.0.1:7311",
                        help="labeld's event endpoint (default: %(default)s)")
    parser.add_argument("--printer", default="preview",
                        help="printer to print on (default: %(default)s)")
    parser.add_argument("--mailer-id", default="123456",
                        help="Mailer ID with a serial range on this labeld (default: %(default)s)")
    parser.add_argument("--service-type", default="270",
                        help="IMb Service Type ID (default: %(default)s)")
    parser.add_argument("--job-prefix", default=f"pyclient-{uuid.uuid4().hex[:12]}",
                        help="prefix of the client job ids (default: a random one)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a reply or a job (default: %(default)s)")
    args = parser.parse_args()

    context = zmq.Context()
    labeld = Labeld(context, args.requests, args.events, args.timeout)
    try:
        run(labeld, args)
    except StepFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError) as e:
        # A reply without a field this client relies on.
        print(f"FAILED: unexpected reply from labeld: {e!r}", file=sys.stderr)
        return 1
    except Unreachable as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 3
    finally:
        labeld.close()
        context.term()
    print("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
