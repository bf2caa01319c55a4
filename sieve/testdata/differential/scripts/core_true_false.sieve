require "fileinto";
if true { fileinto "T"; }
if false { fileinto "F"; }
if not false { fileinto "NF"; }
if not true { fileinto "NT"; }
