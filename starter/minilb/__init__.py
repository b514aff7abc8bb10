"""MiniLoadBalancer: a teaching kit for sockets, forking servers and makespan scheduling.

Exercise modules (students write parts of these): ``costs``, ``scheduling``, ``optimal``,
``protocol``, ``network``. Framework modules (given): ``timeline``, ``servers``, ``balancer``,
``relay``, ``client``, ``plots``, ``demo``, ``cli``. The live system (``balancer``, ``relay``,
``demo``) runs on lesson 4's ``network`` functions, the student's own with ``--student``.
"""

__version__ = "0.1.0"
