"""The end-to-end test's Kafka client: librdkafka (confluent-kafka) configured the way
Confluent Cloud documents OAuth clients, driven by tests/e2e.rs.

Every command prints one JSON line with what happened. `serve` keeps one producer and reads
commands from stdin, so that a session can outlive key rotations and token expiry.

    client.py --bootstrap H:P --token-url URL --client-id ID --client-secret S \
        --extensions logicalCluster=lkc-e2e,identityPoolId=pool-writers COMMAND ...
"""

import argparse
import json
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic


def base_config(args):
    if args.plain:
        # Straight to the broker, no authentication: how the test checks what really landed.
        return {"bootstrap.servers": args.bootstrap, "client.id": "poolgate-e2e-direct"}
    return {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": args.client_id,
        "sasl.oauthbearer.client.secret": args.client_secret,
        "sasl.oauthbearer.token.endpoint.url": args.token_url,
        "sasl.oauthbearer.extensions": args.extensions,
        "client.id": "poolgate-e2e-" + args.client_id,
        # Fail fast: the test waits on outcomes, not on librdkafka's retries.
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
    }


class Errors:
    """Collects librdkafka's error callbacks (authentication failures land here)."""

    def __init__(self):
        self.seen = []

    def __call__(self, err):
        self.seen.append({"code": err.name(), "str": err.str()})

    def auth_failed(self):
        return any(e["code"] == "_AUTHENTICATION" for e in self.seen)


def emit(obj):
    print(json.dumps(obj), flush=True)


def produce(producer, errors, topic, count, prefix, timeout):
    results = {"delivered": 0, "failed": []}

    def on_delivery(err, msg):
        if err is None:
            results["delivered"] += 1
        else:
            results["failed"].append(err.name())

    for i in range(count):
        producer.produce(topic, key=f"{prefix}-{i}", value=f"{prefix} message {i}", on_delivery=on_delivery)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and producer.flush(0.2) > 0:
        if errors.auth_failed():
            break
    left = len(producer)
    if left:
        # Purge so the producer can be closed; undelivered messages count as failed.
        producer.purge()
        producer.flush(0)
    results["undelivered"] = left
    results["errors"] = errors.seen[:]
    results["auth_failed"] = errors.auth_failed()
    return results


def cmd_create_topic(args):
    errors = Errors()
    conf = base_config(args)
    conf["error_cb"] = errors
    admin = AdminClient(conf)
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1)], request_timeout=15)
    out = {"created": False, "error": None}
    try:
        futures[args.topic].result(timeout=20)
        out["created"] = True
    except Exception as e:  # noqa: BLE001 - reported to the test
        kerr = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
        out["error"] = kerr.name() if kerr else str(e)
    out["auth_failed"] = errors.auth_failed()
    emit(out)


def cmd_produce(args):
    errors = Errors()
    conf = base_config(args)
    conf.update({"error_cb": errors, "acks": "all", "message.timeout.ms": int(args.timeout * 1000)})
    producer = Producer(conf)
    emit(produce(producer, errors, args.topic, args.count, args.prefix, args.timeout))


def cmd_consume(args):
    errors = Errors()
    conf = base_config(args)
    conf.update(
        {
            "error_cb": errors,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer = Consumer(conf)
    if args.subscribe:
        # The consumer-group protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
        # OffsetFetch, and OffsetCommit below.
        consumer.subscribe([args.topic])
    else:
        consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
    values, fetch_errors = [], []
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and len(values) < args.count:
        msg = consumer.poll(0.2)
        if msg is None:
            if errors.auth_failed():
                break
            continue
        if msg.error():
            fetch_errors.append(msg.error().name())
            if msg.error().code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
                break
            continue
        values.append(msg.value().decode())
    committed = None
    if args.subscribe and values:
        try:
            consumer.commit(asynchronous=False)
            committed = [tp.offset for tp in consumer.committed([TopicPartition(args.topic, 0)], timeout=10)]
        except Exception as e:  # noqa: BLE001 - reported to the test
            kerr = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            committed = kerr.name() if kerr else str(e)
    consumer.close()
    emit(
        {
            "consumed": len(values),
            "committed": committed,
            "values": values,
            "fetch_errors": fetch_errors,
            "errors": errors.seen,
            "auth_failed": errors.auth_failed(),
        }
    )


def cmd_serve(args):
    """One long-lived producer; stdin lines `produce N PREFIX` or `quit`."""
    errors = Errors()
    conf = base_config(args)
    conf.update({"error_cb": errors, "acks": "all", "message.timeout.ms": int(args.timeout * 1000)})
    producer = Producer(conf)
    emit({"ready": True})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "produce":
            errors.seen.clear()
            emit(produce(producer, errors, args.topic, int(words[1]), words[2], args.timeout))
        else:
            emit({"error": f"unknown command {words[0]}"})
    producer.flush(5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--plain", action="store_true", help="no SASL: talk to the broker directly")
    p.add_argument("--token-url")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--extensions")
    p.add_argument("--timeout", type=float, default=20.0)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create-topic")
    c.add_argument("--topic", required=True)
    c = sub.add_parser("produce")
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, default=10)
    c.add_argument("--prefix", default="m")
    c = sub.add_parser("consume")
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--group", default="e2e-consumers")
    c.add_argument("--subscribe", action="store_true", help="join the group instead of assigning")
    c = sub.add_parser("serve")
    c.add_argument("--topic", required=True)
    args = p.parse_args()
    {"create-topic": cmd_create_topic, "produce": cmd_produce, "consume": cmd_consume, "serve": cmd_serve}[args.command](args)


if __name__ == "__main__":
    main()
