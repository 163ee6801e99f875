"""The wire contract shared by producers and consumers: the Avro schemas, the event model, metadata types,
validation, the JSON form and the codec. It imports neither side. Users import its public names from
``assetpipe``."""
