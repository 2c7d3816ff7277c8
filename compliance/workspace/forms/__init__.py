"""The workspace's forms, one module per area. Forms check the shape of what
was sent and find what it names; services and access helpers decide whether
the act is allowed."""
