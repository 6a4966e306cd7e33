port module Main exposing (main)

{-| Faults on purpose: counts events and answers each one like counter does
(count + 1, then {"count": n, "event": e}), except for three events that make
Elm's runtime throw, each from a different place, and one that answers twice.

    "crash-now"     -> `modBy 0` inside update: `send` throws before any
                       effect is dispatched
    "crash-later"   -> answers like any event, then 100 ms later update
                       handles CrashLater with `modBy 0`: the throw comes from
                       a timer callback
    "crash-in-task" -> a Task.perform whose Task.map computes `modBy 0`: the
                       throw comes from the scheduler while `send` dispatches
                       the command
    "twice"         -> two values in one Cmd.batch, `"part": 1` then
                       `"part": 2`: Elm hands a port its batch last-first,
                       so part 2 arrives first
    any other       -> {"count": n, "event": "..."}
    a non-string    -> the port rejects it (Elm's hint 4) before update runs

The subscription goes through Sub.map and part 2 of "twice" through
Cmd.map, so real output checks the fixture's handling of both.

-}

import Json.Encode as Encode
import Process
import Task


port onEvent : (String -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type alias Model =
    Int


type Msg
    = Event String
    | CrashLater
    | Got Int


main : Program () Model Msg
main =
    Platform.worker
        { init = \_ -> ( 0, Cmd.none )
        , update = update
        , subscriptions = \_ -> Sub.map Event (onEvent identity)
        }


update : Msg -> Model -> ( Model, Cmd Msg )
update msg count =
    case msg of
        Event event ->
            let
                next =
                    count + 1
            in
            case event of
                "crash-now" ->
                    ( modBy 0 next, Cmd.none )

                "crash-later" ->
                    ( next
                    , Cmd.batch
                        [ respond (encode next event)
                        , Process.sleep 100 |> Task.perform (\_ -> CrashLater)
                        ]
                    )

                "crash-in-task" ->
                    ( next
                    , Task.succeed ()
                        |> Task.map (\_ -> modBy 0 next)
                        |> Task.perform Got
                    )

                "twice" ->
                    ( next
                    , Cmd.batch
                        [ respond (encodePart next event 1)
                        , Cmd.map identity (respond (encodePart next event 2))
                        ]
                    )

                _ ->
                    ( next, respond (encode next event) )

        CrashLater ->
            ( modBy 0 count, Cmd.none )

        Got n ->
            ( n, Cmd.none )


encode : Int -> String -> Encode.Value
encode count event =
    Encode.object [ ( "count", Encode.int count ), ( "event", Encode.string event ) ]


encodePart : Int -> String -> Int -> Encode.Value
encodePart count event part =
    Encode.object
        [ ( "count", Encode.int count )
        , ( "event", Encode.string event )
        , ( "part", Encode.int part )
        ]
