require "reject";
reject "Refused";
discard;
