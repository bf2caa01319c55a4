require "include";
include "counter";
include "counter";
