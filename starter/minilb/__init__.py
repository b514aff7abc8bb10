"""MiniLoadBalancer: a teaching kit for sockets, forking servers and makespan scheduling.

Exercise modules (students write parts of these): ``costs``, ``scheduling``, ``optimal``,
``protocol``. Framework modules (given, they never need a student's solution to run):
``timeline``, ``servers``, ``balancer``, ``client``, ``plots``, ``demo``, ``cli``.
"""

__version__ = "0.1.0"
