"""Consumer settings Faust does not expose.

faust-streaming's aiokafka driver hard-codes ``fetch_max_wait_ms=1500``: a fetch
waits up to 1.5 s for data, and Tansu does not answer a waiting fetch early when
data arrives, so each Kafka hop of a warning could take most of that (measured:
up to ~0.8 s per hop). A warning should reach the duty officer in well under a
second, so the worker's consumers wait at most ``kafka.fetch_max_wait_ms``.
This patches one private method of the pinned faust-streaming range (< 0.16);
``test_fetch_wait_is_shortened`` fails if a Faust release moves it.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as driver


def shorten_fetch_wait(ms: int) -> None:
    cls = driver.AIOKafkaConsumerThread
    original = getattr(cls._create_worker_consumer, "__wrapped__", cls._create_worker_consumer)

    def create(self, transport):
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start() for its Fetcher
        return consumer

    create.__wrapped__ = original  # type: ignore[attr-defined]
    cls._create_worker_consumer = create
