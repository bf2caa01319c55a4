require "include";
include "lists";
keep;
