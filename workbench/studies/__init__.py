"""Studies: experiments that combine building blocks and theories into the results a notebook plots."""
