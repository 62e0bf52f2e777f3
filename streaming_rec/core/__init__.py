"""The pure core: embedding, index, user state, ranking. Knows nothing of Kafka or Faust."""
