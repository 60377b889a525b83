"""PostgreSQL-only tests: several hosts on one server, SIGKILL chaos, LISTEN/NOTIFY wake-ups.

The adapter contract itself runs against PostgreSQL through the parametrised ``adapter`` fixture
(``tests/test_adapter_contract.py``, ``tests/test_state_machine.py``); these tests cover what
only a shared server shows.
"""
