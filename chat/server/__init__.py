"""How Daphne serves Parley's HTTP: no body parsed by the server, none read past a cap, deadlines a trickle cannot stretch."""
