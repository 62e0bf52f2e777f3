"""The flows: the product's logic, one class per flow, each testable without a broker.

    flow             reads                          writes
    AnswerQueries    queries | embedded-queries     recommendations, dead-letters
    ApplyFeedback    feedback                       user-state table, dead-letters
    EmbedItems       items                          item-vectors, dead-letters
    EmbedQueries     queries (SREC_ROLE=embed)      embedded-queries, dead-letters
    IndexItems       item-vectors (every worker)    the index and catalog
    CountPopularity  feedback (every worker)        popular-now

A flow is built from the recommend service (or the part it uses) and ports
(``flows.ports``: Sink, StateStore, Compute, Meter) and has one ``handle(records)``
coroutine. Records are judged by one verdict per topic and refused through one policy
(``flows.policy``). The Faust agents in ``streaming_rec.edge`` only feed them.
"""
