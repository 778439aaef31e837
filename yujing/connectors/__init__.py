"""I/O at the edges: MQTT, HTTP ingest, Kafka producer, embedded brokers."""
