require "include";
include :personal "lists";
