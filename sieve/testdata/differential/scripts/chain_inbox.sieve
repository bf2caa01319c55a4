# fileinto "INBOX" is not a keep: it ends the chain.
require "fileinto";
fileinto "INBOX";
