require "fileinto";
if header :is "subject" text:
Meeting tomorrow at 10
.
{ fileinto "TextNotEqual"; }
if header :contains "subject" text:
..dot-stuffed
.
{ fileinto "DotStuffed"; }
