# The user has no rule: the implicit keep.
