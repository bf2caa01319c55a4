# A site script that files meetings as junk, ending the chain.
require "fileinto";
if header :contains "subject" "meeting" { fileinto "Junk"; }
