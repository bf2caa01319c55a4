require "vacation";
vacation :from "Me Myself <me@example.org>" :subject "Away" "Away.";
