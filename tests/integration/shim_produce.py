# SPDX-License-Identifier: Apache-2.0
"""shim_produce.py - a Python producer (confluent-kafka from PyPI, with its
own bundled librdkafka) that loads the producer shim as a plugin, for
tests/integration/test_shim.c.

usage: PYTHON shim_produce.py BROKERS TOPIC PLUGIN CONFIG < records

Each line of stdin is one record: KEY<TAB>VALUE (an empty KEY: no key), sent
with one header, x-h: hv. The records go to partition 0 in order; the script waits for every delivery
report and prints "delivered N failed M librdkafka V". Exit status 0 when
every record was delivered.
"""
import sys

import confluent_kafka


def main():
    brokers, topic, plugin, config = sys.argv[1:5]
    # plugin.library.paths first: it is what makes k2r.config a known property.
    producer = confluent_kafka.Producer({
        "bootstrap.servers": brokers,
        "plugin.library.paths": plugin,
        "k2r.config": config,
        "linger.ms": 5,
    })
    counts = {"delivered": 0, "failed": 0}

    def on_delivery(err, msg):
        counts["failed" if err else "delivered"] += 1

    for line in sys.stdin.buffer:
        key, _, value = line.rstrip(b"\n").partition(b"\t")
        producer.produce(topic, value=value, key=key or None, partition=0,
                         headers=[("x-h", b"hv")], on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(30)
    print("delivered %d failed %d librdkafka %s" % (counts["delivered"], counts["failed"],
                                                      confluent_kafka.libversion()[0]))
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
