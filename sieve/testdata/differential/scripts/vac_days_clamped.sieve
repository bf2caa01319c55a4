require "vacation";
vacation :days 365 "Far away.";
