include "lists";
