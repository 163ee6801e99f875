"""The compiled Avro engine, private to the contract: writers and readers compiled from each schema
(``writer``, ``reader``), the hand-written writer of the asset events' shared layout (``event``), and the
fused paths that write an SDK report (``report``) or an event's JSON form (``form``) straight to the
message. Only ``assetpipe.schemas.codec`` and ``assetpipe.schemas.encoder`` use it; every caller goes
through them, and the encoder decides when the fused paths apply."""
