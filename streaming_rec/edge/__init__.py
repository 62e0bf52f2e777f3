"""The edge: Kafka topics, Faust agents, the client. Adapters around the pure core."""
