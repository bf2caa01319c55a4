require "body";
if body :content :text "x" { keep; }
