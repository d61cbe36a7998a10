"""Stage *deliver*'s endpoints: one module per channel type, listed in ``registry``."""
