require "vacation";
vacation :days "3" "x";
