"""What the five layer programs share: the layer manifest, naming, tags, config, references.

Importing this package never creates a resource.
"""
