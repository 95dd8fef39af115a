"""The ground floor: what every part of cypherloop shares, importing nothing of the project above it.

    errors       the one exception tree (and ``run_guarded``, where it meets a terminal)
    settings     the one typed ``Settings`` object
    env          the library environment defaults, set in one place
    prompt       the one prompt format for training and serving, ``Example``, ``ErrorFeedback``
    cypher_text  the Cypher tokenizer, identifiers, normalised forms, and "the same result"
    files        atomic writes, the JSONL reader and writer
    adapters     the adapter registry's layout on disk, and which adapter is live
    feedback     the feedback store's records and protocols (``AgentStore``, ``FeedbackStore``)

``docs/ARCHITECTURE.md`` draws the floors above it.
"""
