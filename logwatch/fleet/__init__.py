"""Fleet mode: many hosts, one team, coordinated through Redis (or Valkey).

Nothing here imports ``redis`` at module level: a config without ``[fleet]``
never loads it. :mod:`~logwatch.fleet.link` opens the connection (and imports
``redis``) only when :func:`~logwatch.fleet.link.FleetLink.connect` runs.

    settings    FleetSettings: the ``[fleet]`` table, frozen
    keys        hashed Redis key parts: nothing secret, no log text, in Redis
    link        FleetLink: the client, timeouts, circuit breaker, status
    claims      fleet dedup at send time: one host sends, the others are counted
    thresholds  fleet thresholds: N distinct hosts within T for one key
    pacing      one rate limiter per webhook / bot+chat for the whole fleet
"""
