if keep { discard; }
