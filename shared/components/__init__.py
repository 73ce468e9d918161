"""ComponentResources: groups of resources the layers declare more than once, or that a
reader should see as one thing (a function with its log group and alias, a hardened bucket)."""
